/*
 * views.c - the view cache and the version ring.
 *
 * Reads never re-encode: each view is rendered at most once per stamp (the
 * version that last changed it, with the digests that make it unique; see
 * core.c), into bodies (plain and 304; gzip the first time a client asks for
 * it) that every GET of that stamp sends again.  libmicrohttpd
 * reference-counts bodies, so replacing a view only drops our reference;
 * connections still sending the old bytes keep theirs.  A province's views
 * keep their stamp while other provinces change, so caches keep them.
 *
 * The leaderboard and the provinces list, when rendered for a version, are
 * also kept for /v1/versions/{n}-{digest}/... (the last keep_versions,
 * immutable: the digest names the epoch, see docs/ARCHITECTURE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zlib.h>

#include "config.h"
#include "core.h"
#include "page.h"
#include "response.h"
#include "server.h"
#include "util.h"
#include "cors.h"
#include "log.h"
#include "reply.h"
#include "tlogd.h"
#include "views.h"

/* [I] set by views_create; [L] the loop thread. */
struct views {
	struct core		*core;		/* [I] borrowed */
	const char		*cors_origin;	/* [I] borrowed, or NULL */
	long			 max_age;	/* [L] Cache-Control max-age */
	struct view		 singles[VIEW_SINGLES];	/* [L] */
	struct view		*per_province[4];	/* [L] detail, explain,
							   history, history.csv */
	struct view		*per_coalition;	/* [L] */
	size_t			 n_provinces;	/* [L] the views' sizes */
	size_t			 n_coalitions;	/* [L] */
	struct views_counters	 n;		/* [L] */
	z_stream		 zs;		/* [L] reused by gzip_bytes */
	bool			 zs_ready;	/* [L] */
	/* Reads older revisions kept in the loaded snapshot. */
	tally_revision_loader	 loader;	/* [L] */
	void			*loader_ctx;	/* [L] */
	struct version_slot	*versions;	/* [L] ring of n_versions */
	size_t			 n_versions;	/* [I] keep_versions */
	uint64_t		 first_kept;	/* [L] the first version recorded */
	bool			 any_kept;	/* [L] */
	/* The previous election, for the change members (tally/compare.h),
	 * loaded with the definition in force; NULL: none named. */
	struct tally_previous	*previous;	/* [L] owned */
	const struct tally_election *previous_of;	/* [L] the election it
							   was loaded for */
	struct tally_diag	*diag;		/* [L] borrowed while creating */
	char			 prefix[96];	/* [I] of its URLs: "/v1", or
						   "/v1/contests/<id>" */
};

static void	version_record(struct views *vs, enum view_id id,
		    const struct view *v);

static void
view_clear(struct view *v)
{
	http_chunk_unref(v->chunk);
	http_chunk_unref(v->gz_chunk);
	http_body_free(v->plain);
	http_body_free(v->gzip);
	http_body_free(v->not_modified);
	http_body_free(v->not_modified_gz);
	memset(v, 0, sizeof(*v));
}

static void
views_free(struct views *vs)
{
	size_t i, k;

	for (i = 0; i < VIEW_SINGLES; i++)
		view_clear(&vs->singles[i]);
	for (k = 0; k < 4; k++) {
		for (i = 0; vs->per_province[k] != NULL &&
		    i < vs->n_provinces; i++)
			view_clear(&vs->per_province[k][i]);
		free(vs->per_province[k]);
		vs->per_province[k] = NULL;
	}
	for (i = 0; vs->per_coalition != NULL && i < vs->n_coalitions; i++)
		view_clear(&vs->per_coalition[i]);
	free(vs->per_coalition);
	vs->per_coalition = NULL;
}

/*
 * The previous election the definition in force names, tallied once: the
 * change members of the views are a function of it and of the state.  At
 * start a bad one refuses the start (diag); at a definition swap it is
 * logged and the views go without the comparison (the definition was
 * taken already).
 */
static int
previous_load(struct views *vs, const struct tally_election *e)
{
	struct tally_diag local;
	bool none;
	size_t i;

	/* A new max-age empties the cache, not the comparison. */
	if (vs->previous_of == e)
		return 0;
	tally_previous_destroy(vs->previous);
	vs->previous_of = e;
	tally_diag_init(&local);
	vs->previous = tally_previous_load(e, &none, vs->diag ? vs->diag :
	    &local);
	if (vs->previous == NULL && !none && vs->diag != NULL) {
		tally_diag_finish(&local);
		vs->previous_of = NULL;
		return -1;
	}
	for (i = 0; i < local.count; i++)
		log_warnx("previous election: %s (no comparison)",
		    local.msgs[i]);
	tally_diag_finish(&local);
	return 0;
}

/* Views sized for the election in force.  0 or -1. */
int
views_resize(struct views *vs)
{
	const struct tally_election *e = core_election(vs->core);
	size_t k;

	views_free(vs);
	if (previous_load(vs, e) == -1)
		return -1;
	vs->n_provinces = e->n_provinces;
	vs->n_coalitions = e->n_coalitions;
	for (k = 0; k < 4; k++)
		if ((vs->per_province[k] = calloc(e->n_provinces ?
		    e->n_provinces : 1, sizeof(struct view))) == NULL)
			return -1;
	if ((vs->per_coalition = calloc(e->n_coalitions ? e->n_coalitions : 1,
	    sizeof(struct view))) == NULL)
		return -1;
	return 0;
}

/*
 * Compress with one deflate stream kept for the life of the API: creating
 * zlib's state (about 256 KiB) for every version was half of a render.
 */
static int
gzip_bytes(struct views *vs, const char *in, size_t len, char **out,
    size_t *outlen)
{
	z_stream *zs = &vs->zs;
	size_t cap = compressBound((uLong)len) + 32;
	char *buf;

	if (!vs->zs_ready) {
		memset(zs, 0, sizeof(*zs));
		/* windowBits 15 + 16: a gzip wrapper, as Content-Encoding wants. */
		if (deflateInit2(zs, 6, Z_DEFLATED, 15 + 16, 8,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		vs->zs_ready = true;
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

void
views_cache_headers(struct views *vs, struct http_body *b, const char *etag,
    time_t at)
{
	char buf[64];

	http_body_header(b, "ETag", etag);
	time_http(at, buf, sizeof(buf));
	http_body_header(b, "Last-Modified", buf);
	snprintf(buf, sizeof(buf), "public, max-age=%ld", vs->max_age);
	http_body_header(b, "Cache-Control", buf);
	http_body_header(b, "Vary", "Accept-Encoding");
	cors_headers(vs->cors_origin, b);
}

/* The stamp a view is rendered for. */
struct core_stamp
views_stamp(struct views *vs, enum view_id id, size_t index)
{
	struct core_stamp st;

	switch (id) {
	case VIEW_ELECTION:
		/* The definition alone: its digest says everything. */
		memset(&st, 0, sizeof(st));
		st.digest = core_definition_digest(vs->core);
		st.at = core_definition_time(vs->core);
		return st;
	case VIEW_PAGE:
		/*
		 * The page is the same bytes for the life of the binary; its
		 * digest makes the tag change with the page.  Its time says
		 * nothing about an upgraded binary, so If-Modified-Since is
		 * not trusted for it (sec_shared).
		 */
		memset(&st, 0, sizeof(st));
		st.digest = page_html_digest;
		st.at = core_definition_time(vs->core);
		st.sec_shared = true;
		return st;
	case VIEW_EXPLAIN:
		/*
		 * The explain view embeds the national levelling tier, which
		 * every change anywhere moves: its stamp is the tier's, the
		 * whole tally's (a province's own stamp would keep a tag for
		 * stale national figures).
		 */
		if (core_state(vs->core)->levelling != NULL)
			return *core_stamp(vs->core, SIZE_MAX);
		return *core_stamp(vs->core, index);
	case VIEW_PROVINCE:
	case VIEW_HISTORY:
	case VIEW_HISTORY_CSV:
		return *core_stamp(vs->core, index);
	default:
		return *core_stamp(vs->core, SIZE_MAX);
	}
}

/*
 * A leaderboard's body names the transparency log's size at its version
 * (tree size = version): the log's entry of that version (index size - 1,
 * GET /log/proof/{index}) carries those bytes' SHA-256 (docs/VERIFY.md).
 */
static void
log_size_header(struct http_body *b, const struct view *v)
{
	size_t n = strlen(v->location);
	char buf[24];

	if (!tlogd_ok(tlogd_current) || n < 12 ||
	    strcmp(v->location + n - 12, "/leaderboard") != 0)
		return;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v->version);
	http_body_header(b, "Tally-Log-Size", buf);
}

/* The gzip body of a view, made when first asked for. */
struct http_body *
views_gzip(struct views *vs, struct view *v, time_t at)
{
	char *gz;
	size_t gzlen;

	if (v->gzip != NULL)
		return v->gzip;
	if (gzip_bytes(vs, v->bytes, v->len, &gz, &gzlen) == -1)
		return NULL;
	if ((v->gzip = http_body_new(gz, gzlen, true)) == NULL)
		return NULL;
	v->gz_bytes = gz;
	v->gz_len = gzlen;
	views_gzip_headers(vs, v->gzip, v, at);
	vs->n.gzips++;
	return v->gzip;
}

void
views_gzip_headers(struct views *vs, struct http_body *b, const struct view *v,
    time_t at)
{
	http_body_header(b, "Content-Type", v->ctype);
	http_body_header(b, "Content-Encoding", "gzip");
	views_cache_headers(vs, b, v->etag_gz, at);
	if (v->location[0] != '\0')
		http_body_header(b, "Content-Location", v->location);
	log_size_header(b, v);
}

/* Fill a view from bytes (taken: freed on every path); gzip comes later. */
static int
view_fill(struct views *vs, struct view *v, const struct core_stamp *st,
    char *bytes, size_t len, const char *content_type)
{
	static char empty[] = "";

	view_clear(v);
	v->version = st->version;
	v->digest = st->digest;
	/*
	 * A strong validator per representation: the gzip body is other
	 * bytes, so it has its own (RFC 9110 8.8.3).
	 */
	snprintf(v->etag, sizeof(v->etag), "\"%llu-%016llx\"",
	    (unsigned long long)st->version, (unsigned long long)st->digest);
	snprintf(v->etag_gz, sizeof(v->etag_gz), "\"%llu-%016llx-gz\"",
	    (unsigned long long)st->version, (unsigned long long)st->digest);
	if ((v->plain = http_body_new(bytes, len, true)) == NULL)
		goto fail;
	v->bytes = bytes;
	v->len = len;
	v->ctype = content_type;
	bytes = NULL;
	if ((v->not_modified = http_body_new(empty, 0, false)) == NULL ||
	    (v->not_modified_gz = http_body_new(empty, 0, false)) == NULL)
		goto fail;
	http_body_header(v->plain, "Content-Type", content_type);
	views_cache_headers(vs, v->plain, v->etag, st->at);
	views_cache_headers(vs, v->not_modified, v->etag, st->at);
	views_cache_headers(vs, v->not_modified_gz, v->etag_gz, st->at);
	v->valid = true;
	return 0;
fail:
	free(bytes);
	view_clear(v);
	return -1;
}

/*
 * The flat file (tally_render_results_csv): each row's version and time are
 * its province's stamp, which restarts and snapshots keep (the state's own
 * `changed` is the snapshot's version after a restart).
 */
char *
views_results(struct views *vs, bool csv, uint64_t since, const char **ctype)
{
	const struct tally_election *e = core_election(vs->core);
	struct tally_row_stamp *st;
	char *bytes;
	size_t p;

	*ctype = csv ? "text/csv; charset=utf-8; header=present" :
	    "application/jsonl; charset=utf-8";
	if ((st = calloc(e->n_provinces ? e->n_provinces : 1,
	    sizeof(*st))) == NULL)
		return NULL;
	for (p = 0; p < e->n_provinces; p++) {
		const struct core_stamp *cs = core_stamp(vs->core, p);
		st[p].version = cs->version;
		time_rfc3339(cs->at, st[p].at, sizeof(st[p].at));
	}
	bytes = csv ? tally_render_results_csv(core_state(vs->core), st,
	    since) : tally_render_results_jsonl(core_state(vs->core), st,
	    since);
	free(st);
	return bytes;
}

/*
 * The leaderboard's text (taken) with a last member key: j (taken) written
 * before its closing brace.  New, or NULL without memory.
 */
static char *
with_member(char *text, const char *key, json_t *j)
{
	size_t n = strlen(text), m, k = strlen(key);
	char *cj, *out = NULL;

	if (j == NULL || n == 0 || text[n - 1] != '}' ||
	    (cj = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL)
		goto done;
	m = strlen(cj);
	if ((out = malloc(n + k + m + 8)) != NULL)
		snprintf(out, n + k + m + 8, "%.*s,\"%s\":%s}", (int)(n - 1),
		    text, key, cj);
	free(cj);
done:
	json_decref(j);
	free(text);
	return out;
}

/* A copy of the bytes the log rendered for version (its ring slot's, by
 * views_version_publish), or NULL: the current view need not render. */
static char *
ring_leaderboard(struct views *vs, uint64_t version, size_t *len)
{
	const struct version_slot *slot = &vs->versions[version %
	    vs->n_versions];
	char *copy;

	if (slot->version != version || slot->lb_raw == NULL ||
	    slot->digest != core_stamp(vs->core, SIZE_MAX)->digest ||
	    (copy = malloc(slot->lb_raw_len + 1)) == NULL)
		return NULL;
	memcpy(copy, slot->lb_raw, slot->lb_raw_len);
	copy[slot->lb_raw_len] = '\0';
	*len = slot->lb_raw_len;
	return copy;
}

/* Render a view's bytes (new, NUL-terminated) and its content type. */
static char *
render(struct views *vs, enum view_id id, size_t index, const char **ctype)
{
	const struct tally_state *s = core_state(vs->core);
	json_t *j = NULL;
	char *bytes;

	*ctype = "application/json; charset=utf-8";
	switch (id) {
	case VIEW_ELECTION:
		j = tally_election_dump(core_election(vs->core));
		break;
	case VIEW_LEADERBOARD:
		/*
		 * The hottest view: written directly, not through jansson,
		 * by the function whose bytes the transparency log's entry
		 * of each version hashes (with the expected vote): the very
		 * bytes the log rendered and hashed for this version when it
		 * has them, rendered once.  The comparison with a previous
		 * election is not in the log (a verifier has no previous
		 * election): it comes last, after the logged members.
		 */
		{
			size_t lblen;
			if ((bytes = tlogd_leaderboard_take(tlogd_current,
			    vs->core, s->version, &lblen)) == NULL &&
			    (bytes = ring_leaderboard(vs, s->version,
			    &lblen)) == NULL)
				bytes = tally_tlog_leaderboard(s, &lblen);
			if (bytes != NULL && vs->previous != NULL) {
				bytes[lblen - 1] = '\0';	/* the newline */
				bytes = reply_with_newline(with_member(bytes,
				    "change", tally_compare_national(
				    vs->previous, s)));
			}
		}
		return bytes;
	case VIEW_LEADERBOARD_CSV:
		*ctype = "text/csv; charset=utf-8; header=present";
		return tally_render_leaderboard_csv(s);
	case VIEW_PROVINCES:
		j = tally_render_provinces(s);
		break;
	case VIEW_PROVINCES_OPEN:
	case VIEW_PROVINCES_SETTLED:
		/* ?settled=false: what the uncounted can still change. */
		j = tally_render_provinces_settled(s, id == VIEW_PROVINCES_SETTLED);
		break;
	case VIEW_PROVINCES_CSV:
		*ctype = "text/csv; charset=utf-8; header=present";
		return tally_render_provinces_csv(s);
	case VIEW_PAGE:
		/* Copied once per process, so the view owns it like any other. */
		*ctype = "text/html; charset=utf-8";
		if ((bytes = malloc(page_html_len + 1)) != NULL)
			memcpy(bytes, page_html, page_html_len + 1);
		return bytes;
	case VIEW_LEADERBOARD_SVG: {
		/*
		 * Drawn from the leaderboard's bytes, as a kept version is
		 * (views_version_svg): /v1/versions/{n}/leaderboard.svg is then the
		 * same bytes whenever and wherever it is asked for.
		 */
		struct view *lb = views_current(vs, VIEW_LEADERBOARD, 0);
		*ctype = "image/svg+xml";
		return lb == NULL ? NULL : tally_render_hemicycle_svg_leaderboard(
		    core_election(vs->core), lb->bytes, lb->len);
	}
	case VIEW_PROVINCE:
	case VIEW_EXPLAIN:
		j = tally_render_province(s, index, id == VIEW_EXPLAIN);
		if (j != NULL && vs->previous != NULL)
			json_object_set_new(j, "change", tally_compare_province(
			    vs->previous, s, index));
		if (j != NULL && core_election(vs->core)->provinces[index].
		    has_expected)
			json_object_set_new(j, "expected",
			    tally_expected_province(s, index));
		break;
	case VIEW_HISTORY:
		j = tally_render_history(s, index, vs->loader, vs->loader_ctx);
		break;
	case VIEW_COALITION:
		j = tally_render_coalition(s, index);
		if (j != NULL && vs->previous != NULL)
			json_object_set_new(j, "change", tally_compare_coalition(
			    vs->previous, s, index));
		break;
	case VIEW_MAP_SVG:
	case VIEW_MAP_SVG_SEATS:
		*ctype = "image/svg+xml";
		return tally_render_map_svg(s, id == VIEW_MAP_SVG ?
		    TALLY_MAP_FIRST : TALLY_MAP_SEATS);
	case VIEW_RESULTS_CSV:
	case VIEW_RESULTS_JSONL:
		return views_results(vs, id == VIEW_RESULTS_CSV, 0, ctype);
	case VIEW_HISTORY_CSV:
		*ctype = "text/csv; charset=utf-8; header=present";
		return tally_render_history_csv(s, index, vs->loader,
		    vs->loader_ctx);
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
	return reply_with_newline(bytes);
}

/* Does an If-None-Match list name etag (weak comparison, RFC 9110 13.1.2)? */
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

/*
 * If-Modified-Since (RFC 9110 13.1.3), used only without If-None-Match.
 * Last-Modified has whole seconds, so it proves nothing when another
 * version shared the view's second: then the body is sent.
 */
static bool
not_modified_since(const char *ims, const struct core_stamp *st)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (ims == NULL || strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL)
		return false;
	t = timegm(&tm);
	return st->at < t || (st->at == t && !st->sec_shared);
}

static struct view *
view_slot(struct views *vs, enum view_id id, size_t index)
{
	switch (id) {
	case VIEW_PROVINCE:
		return &vs->per_province[0][index];
	case VIEW_EXPLAIN:
		return &vs->per_province[1][index];
	case VIEW_HISTORY:
		return &vs->per_province[2][index];
	case VIEW_COALITION:
		return &vs->per_coalition[index];
	case VIEW_HISTORY_CSV:
		return &vs->per_province[3][index];
	default:
		return &vs->singles[id];
	}
}

/* The view rendered for the current stamp (rendered now if needed), or NULL. */
struct view *
views_current(struct views *vs, enum view_id id, size_t index)
{
	struct view *v = view_slot(vs, id, index);
	struct core_stamp st = views_stamp(vs, id, index);
	unsigned long nomem;
	const char *ctype;
	char *bytes;

	if (v->valid && v->version == st.version && v->digest == st.digest) {
		vs->n.cache_hits++;
		return v;
	}
	nomem = tally_json_failures();
	bytes = render(vs, id, index, &ctype);
	vs->n.renders++;
	/* A view that lost a member to a failed allocation is not
	 * cached, nor sent (see tally_json_init). */
	if (tally_json_failures() != nomem) {
		free(bytes);
		bytes = NULL;
	}
	if (bytes == NULL || view_fill(vs, v, &st, bytes, strlen(bytes),
	    ctype) == -1)
		return NULL;
	if (id == VIEW_LEADERBOARD) {
		/* The same bytes for ever, at the version's own URL. */
		snprintf(v->location, sizeof(v->location),
		    "%s/versions/%llu-%016llx/leaderboard", vs->prefix,
		    (unsigned long long)st.version,
		    (unsigned long long)st.digest);
		http_body_header(v->plain, "Content-Location", v->location);
		http_body_header(v->not_modified, "Content-Location",
		    v->location);
		log_size_header(v->plain, v);
		log_size_header(v->not_modified, v);
	}
	if (id == VIEW_LEADERBOARD_SVG) {
		snprintf(v->location, sizeof(v->location),
		    "%s/versions/%llu-%016llx/leaderboard.svg", vs->prefix,
		    (unsigned long long)st.version,
		    (unsigned long long)st.digest);
		http_body_header(v->plain, "Content-Location", v->location);
		http_body_header(v->not_modified, "Content-Location",
		    v->location);
	}
	if (id == VIEW_LEADERBOARD || id == VIEW_PROVINCES)
		version_record(vs, id, v);
	return v;
}

/* A body of the version ring: the view's bytes, immutable. */
static struct http_body *
version_body(struct views *vs, const struct view *v, const char **bytes)
{
	struct http_body *b;
	char *copy;

	if ((copy = malloc(v->len)) == NULL)
		return NULL;
	memcpy(copy, v->bytes, v->len);
	if ((b = http_body_new(copy, v->len, true)) == NULL) {
		free(copy);
		return NULL;
	}
	if (bytes != NULL)
		*bytes = copy;
	http_body_header(b, "Content-Type", v->ctype);
	http_body_header(b, "ETag", v->etag);
	http_body_header(b, "Cache-Control", "public, max-age=31536000, "
	    "immutable");
	cors_headers(vs->cors_origin, b);
	log_size_header(b, v);
	return b;
}

/* Empty a slot of the ring for another version (or another epoch's). */
static void
slot_reset(struct views *vs, struct version_slot *slot, uint64_t version,
    uint64_t digest)
{
	(void)vs;
	http_body_free(slot->leaderboard);
	http_body_free(slot->provinces);
	http_body_free(slot->svg);
	tally_state_totals_destroy(slot->totals);
	free(slot->lb_raw);
	slot->leaderboard = slot->provinces = slot->svg = NULL;
	slot->totals = NULL;
	slot->lb_raw = NULL;
	slot->lb_bytes = NULL;
	slot->version = version;
	slot->digest = digest;
}

static void
slot_kept(struct views *vs, uint64_t version)
{
	if (!vs->any_kept || version < vs->first_kept) {
		vs->first_kept = version;
		vs->any_kept = true;
	}
}

/*
 * Keep a view in the version ring as it is rendered for its version.  Every
 * published version has its leaderboard kept: rendered (served, or an
 * event stream is open), or as a copy of its totals to write it from when
 * first asked (views_version_publish: a render at every POST cost ~470k
 * instructions, 4 times a POST's own).  A provinces list only when somebody
 * was served it at its version (3.5M instructions a version to render
 * eagerly), and get_version says so.
 */
static void
version_record(struct views *vs, enum view_id id, const struct view *v)
{
	uint64_t version = v->version;
	struct version_slot *slot = &vs->versions[version % vs->n_versions];
	struct http_body **b = id == VIEW_LEADERBOARD ? &slot->leaderboard :
	    &slot->provinces;

	if (slot->version != version || slot->digest != v->digest)
		slot_reset(vs, slot, version, v->digest);
	if (*b != NULL)
		return;
	*b = version_body(vs, v, id == VIEW_LEADERBOARD ? &slot->lb_bytes :
	    NULL);
	if (id == VIEW_LEADERBOARD) {
		slot->lb_len = v->len;
		snprintf(slot->lb_etag, sizeof(slot->lb_etag), "%s", v->etag);
		/* Rendered live: the copy of its totals is not needed. */
		tally_state_totals_destroy(slot->totals);
		slot->totals = NULL;
		free(slot->lb_raw);
		slot->lb_raw = NULL;
	}
	slot_kept(vs, version);
}

/*
 * Does the leaderboard carry members read from the provinces (the
 * comparison with the previous election, the expected vote)?  Those cannot
 * be written from a copy of the totals.
 */
static bool
leaderboard_reads_provinces(const struct views *vs)
{
	/* Asked at every version: the definition's flag, not a walk of its
	 * provinces (6k instructions a POST at 1,040 provinces). */
	return vs->previous != NULL || core_election(vs->core)->has_expected;
}

int
views_version_publish(struct views *vs, uint64_t version)
{
	const struct core_stamp *st = core_stamp(vs->core, SIZE_MAX);
	struct version_slot *slot = &vs->versions[version % vs->n_versions];

	/*
	 * The transparency log rendered and hashed this version's bytes
	 * already: kept as they are (no render, no copy of the totals, no
	 * body until somebody asks), unless the view adds the comparison
	 * with a previous election to them.
	 */
	if (vs->previous == NULL && tlogd_leaderboard_ready(tlogd_current,
	    vs->core, version)) {
		if (slot->version != version || slot->digest != st->digest)
			slot_reset(vs, slot, version, st->digest);
		if (slot->leaderboard != NULL || slot->lb_raw != NULL)
			return 0;
		tally_state_totals_destroy(slot->totals);
		slot->totals = NULL;
		slot->lb_raw = tlogd_leaderboard_take(tlogd_current, vs->core,
		    version, &slot->lb_raw_len);
		slot_kept(vs, version);
		return 0;
	}
	/* Rendered now, as with streams open: the same bytes, at a render's
	 * cost, for elections whose leaderboard reads the provinces. */
	if (leaderboard_reads_provinces(vs))
		return views_current(vs, VIEW_LEADERBOARD, 0) == NULL ? -1 : 0;

	if (slot->version != version || slot->digest != st->digest)
		slot_reset(vs, slot, version, st->digest);
	if (slot->leaderboard != NULL || slot->totals != NULL)
		return 0;
	if ((slot->totals = tally_state_totals_copy(core_state(vs->core))) ==
	    NULL)
		return -1;
	slot_kept(vs, version);
	return 0;
}

int
views_version_leaderboard(struct views *vs, struct version_slot *slot)
{
	const struct tally_state *t = slot->totals;
	struct view v;
	char *bytes;

	if (slot->leaderboard != NULL)
		return 0;
	if (slot->lb_raw != NULL) {
		/* The bytes the log hashed for this version. */
		if ((bytes = realloc(slot->lb_raw, slot->lb_raw_len + 1)) ==
		    NULL)
			return -1;
		slot->lb_raw = NULL;
		bytes[slot->lb_raw_len] = '\0';
	} else if (t == NULL)
		return -1;
	else	/* As views_current renders it: the same bytes. */
		bytes = reply_with_newline(tally_render_leaderboard_text(t,
		    t->updated_at[0] ? t->updated_at : NULL));
	if (bytes == NULL)
		return -1;
	memset(&v, 0, sizeof(v));
	v.bytes = bytes;
	v.len = strlen(bytes);
	v.ctype = "application/json; charset=utf-8";
	snprintf(v.etag, sizeof(v.etag), "\"%llu-%016llx\"",
	    (unsigned long long)slot->version, (unsigned long long)slot->digest);
	/* Its own URL, as the live view names it: the log size header too. */
	v.version = slot->version;
	snprintf(v.location, sizeof(v.location),
	    "%s/versions/%llu-%016llx/leaderboard", vs->prefix,
	    (unsigned long long)slot->version, (unsigned long long)slot->digest);
	slot->leaderboard = version_body(vs, &v, &slot->lb_bytes);
	free(bytes);
	if (slot->leaderboard == NULL)
		return -1;
	slot->lb_len = v.len;
	snprintf(slot->lb_etag, sizeof(slot->lb_etag), "%s", v.etag);
	tally_state_totals_destroy(slot->totals);
	slot->totals = NULL;
	return 0;
}

/*
 * A kept version's hemicycle, drawn from its leaderboard's bytes the first
 * time it is asked for (most versions never are), then kept with the slot:
 * the same bytes and tag as /v1/leaderboard.svg had at that version.
 */
int
views_version_svg(struct views *vs, struct version_slot *slot)
{
	char *svg;

	if ((svg = tally_render_hemicycle_svg_leaderboard(core_election(
	    vs->core), slot->lb_bytes, slot->lb_len)) == NULL)
		return -1;
	if ((slot->svg = http_body_new(svg, strlen(svg), true)) == NULL) {
		free(svg);
		return -1;
	}
	http_body_header(slot->svg, "Content-Type", "image/svg+xml");
	http_body_header(slot->svg, "ETag", slot->lb_etag);
	http_body_header(slot->svg, "Cache-Control",
	    "public, max-age=31536000, "
	    "immutable");
	cors_headers(vs->cors_origin, slot->svg);
	return 0;
}

/* Forget every kept version: a new epoch (api_reload). */
void
views_versions_clear(struct views *vs)
{
	size_t i;

	for (i = 0; i < vs->n_versions; i++) {
		struct version_slot *slot = &vs->versions[i];
		http_body_free(slot->leaderboard);
		http_body_free(slot->provinces);
		http_body_free(slot->svg);
		tally_state_totals_destroy(slot->totals);
		free(slot->lb_raw);
		memset(slot, 0, sizeof(*slot));
	}
	vs->any_kept = false;
	vs->first_kept = 0;
}

struct views *
views_create(struct core *core, const struct config *cf,
    const char *cors_origin, struct tally_diag *diag)
{
	struct views *vs;

	if ((vs = calloc(1, sizeof(*vs))) == NULL)
		return NULL;
	vs->core = core;
	snprintf(vs->prefix, sizeof(vs->prefix), "/v1");
	vs->cors_origin = cors_origin;
	vs->max_age = cf->max_age;
	vs->n_versions = (size_t)cf->keep_versions;
	vs->diag = diag;
	if (views_resize(vs) == -1 || (vs->versions = calloc(vs->n_versions,
	    sizeof(*vs->versions))) == NULL) {
		views_destroy(vs);
		return NULL;
	}
	vs->diag = NULL;
	return vs;
}

void
views_set_prefix(struct views *vs, const char *prefix)
{
	snprintf(vs->prefix, sizeof(vs->prefix), "%s", prefix);
}

const char *
views_prefix(const struct views *vs)
{
	return vs->prefix;
}

void
views_destroy(struct views *vs)
{
	size_t i;

	if (vs == NULL)
		return;
	views_free(vs);
	tally_previous_destroy(vs->previous);
	if (vs->zs_ready)
		deflateEnd(&vs->zs);
	for (i = 0; vs->versions != NULL && i < vs->n_versions; i++) {
		http_body_free(vs->versions[i].leaderboard);
		free(vs->versions[i].lb_raw);
		http_body_free(vs->versions[i].provinces);
		http_body_free(vs->versions[i].svg);
		tally_state_totals_destroy(vs->versions[i].totals);
	}
	free(vs->versions);
	free(vs);
}

int
views_set_max_age(struct views *vs, long max_age)
{
	if (vs->max_age == max_age)
		return 0;
	vs->max_age = max_age;
	return views_resize(vs);
}

void
views_set_loader(struct views *vs, tally_revision_loader load, void *ctx)
{
	vs->loader = load;
	vs->loader_ctx = ctx;
}

tally_revision_loader
views_loader(const struct views *vs, void **ctx)
{
	*ctx = vs->loader_ctx;
	return vs->loader;
}

const struct views_counters *
views_counters(const struct views *vs)
{
	return &vs->n;
}

bool
views_is_fresh(const struct view *v, const struct core_stamp *st,
    const char *inm, const char *ims)
{
	if (inm != NULL)
		return etag_matches(inm, v->etag) || etag_matches(inm, v->etag_gz);
	return not_modified_since(ims, st);
}

struct version_slot *
views_version(struct views *vs, uint64_t n, uint64_t cur, uint64_t *oldest,
    size_t *kept)
{
	struct version_slot *slot = &vs->versions[n % vs->n_versions];

	*oldest = vs->first_kept;
	if (cur >= vs->n_versions && cur - vs->n_versions + 1 > *oldest)
		*oldest = cur - vs->n_versions + 1;
	*kept = vs->n_versions;
	if (n < *oldest || n > cur || !vs->any_kept || slot->version != n)
		return NULL;
	return slot;
}
