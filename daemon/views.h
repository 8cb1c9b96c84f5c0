/*
 * views.h - the view cache: every GET body rendered at most once per stamp
 * (core_stamp), with its 304 bodies and, when first asked for, its gzip
 * body; and the version ring, the leaderboard and provinces views as they
 * were served at each of the last keep_versions versions.
 *
 * Threads: the loop thread only, every function and every field ([L]
 * below; [I]: set by views_create, then only read).  A view's bodies are
 * reference-counted by libmicrohttpd, so replacing one only drops the
 * cache's reference.
 *
 * Depends on: core (stamps, state, rendering input), cors, reply.  Nothing
 * here knows of requests, routes, long-polls or streams (live.c reads
 * views, never the other way round).
 */
#ifndef TALLYD_VIEWS_H
#define TALLYD_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tally/tally.h>

struct config;
struct core;
struct core_stamp;
struct http_body;
struct http_chunk;
struct views;

/* Views rendered once per stamp: one each, or one per province/coalition. */
enum view_id {
	VIEW_ELECTION, VIEW_LEADERBOARD, VIEW_LEADERBOARD_CSV, VIEW_PROVINCES,
	VIEW_PROVINCES_CSV, VIEW_PROVINCES_OPEN, VIEW_PROVINCES_SETTLED,
	VIEW_PAGE, VIEW_LEADERBOARD_SVG,
	VIEW_RESULTS_CSV, VIEW_RESULTS_JSONL,	/* the flat file (newsroom) */
	VIEW_MAP_SVG, VIEW_MAP_SVG_SEATS,	/* /v1/map.svg, ?by=seats */
	VIEW_SINGLES,
	VIEW_PROVINCE = VIEW_SINGLES, VIEW_EXPLAIN, VIEW_HISTORY, VIEW_COALITION,
	VIEW_HISTORY_CSV,
};

/* One view as rendered for one stamp.  [L], owned by the cache. */
struct view {
	bool			 valid;
	uint64_t		 version;	/* the stamp rendered for */
	uint64_t		 digest;
	struct http_body	*plain;
	struct http_body	*gzip;		/* made on the first gzip GET */
	struct http_body	*not_modified;
	struct http_body	*not_modified_gz;
	const char		*bytes;		/* the plain body, owned by plain */
	size_t			 len;
	const char		*ctype;
	struct http_chunk	*chunk;		/* the plain bytes, for long-polls
						   (made and owned by live.c's
						   first answer, freed here) */
	const char		*gz_bytes;	/* the gzip body's, owned by gzip */
	size_t			 gz_len;
	struct http_chunk	*gz_chunk;	/* gz_bytes, as chunk */
	char			 location[192];	/* Content-Location, or "" */
	char			 etag[64];
	char			 etag_gz[64];
};

/* A version's leaderboard and provinces, as served at that version.  [L] */
struct version_slot {
	uint64_t		 version;
	uint64_t		 digest;	/* its stamp's: the epoch */
	struct http_body	*leaderboard;
	struct http_body	*provinces;
	/* The hemicycle, drawn from the leaderboard's bytes when first asked. */
	const char		*lb_bytes;	/* owned by leaderboard */
	size_t			 lb_len;
	char			 lb_etag[64];
	struct http_body	*svg;
	/* A version published but not served: the totals its leaderboard is
	 * written from when first asked (tally_state_totals_copy), or NULL. */
	struct tally_state	*totals;
	/* Or the bytes the transparency log rendered and hashed for it
	 * (owned; tlogd_leaderboard_take), its body made when first asked. */
	char			*lb_raw;
	size_t			 lb_raw_len;
};

/* What /metrics says of the cache.  [L] */
struct views_counters {
	uint64_t	 cache_hits;
	uint64_t	 renders;
	uint64_t	 gzips;
};

/*
 * A cache for core's election (core borrowed; cors_origin borrowed, may be
 * NULL, kept for the cache's life), keeping cf->keep_versions versions.
 * NULL without memory, or with diag when the previous election the
 * definition names cannot be loaded (tally/compare.h).
 */
struct views	*views_create(struct core *core, const struct config *cf,
		    const char *cors_origin, struct tally_diag *diag);
void		 views_destroy(struct views *vs);
/* Drop every view and size the cache for the election in force.  0 or -1. */
int		 views_resize(struct views *vs);
/* A new max-age: cached bodies carry the old one, so they go.  0 or -1. */
int		 views_set_max_age(struct views *vs, long max_age);
/*
 * The prefix of the URLs its views name (Content-Location of a version):
 * "/v1" (the default), or "/v1/contests/<id>" for a contest's (contests.c).
 */
void		 views_set_prefix(struct views *vs, const char *prefix);
const char	*views_prefix(const struct views *vs);
/* How history reads revisions kept on disk. */
void		 views_set_loader(struct views *vs, tally_revision_loader load,
		    void *ctx);

/* The stamp view (id, index) is rendered for now. */
struct core_stamp views_stamp(struct views *vs, enum view_id id, size_t index);
/*
 * The view rendered for its current stamp (rendered now when needed), or
 * NULL without memory.  Borrowed: valid until the next call that renders.
 */
struct view	*views_current(struct views *vs, enum view_id id, size_t index);
/*
 * The flat file as CSV (csv) or JSON lines, only the provinces changed
 * after `since`: new bytes (NULL without memory) and their content type.
 */
char		*views_results(struct views *vs, bool csv, uint64_t since,
		    const char **ctype);
/* v's gzip body, made when first asked for; NULL without memory. */
struct http_body *views_gzip(struct views *vs, struct view *v, time_t at);
/* The headers of v's gzip body on b (a body made per request). */
void		 views_gzip_headers(struct views *vs, struct http_body *b,
		    const struct view *v, time_t at);
/*
 * Does the client hold v already?  If-None-Match (inm: either
 * representation's tag), or without it If-Modified-Since (ims) against st.
 */
bool		 views_is_fresh(const struct view *v, const struct core_stamp *st,
		    const char *inm, const char *ims);
/* ETag, Last-Modified, Cache-Control, Vary and CORS headers on b. */
void		 views_cache_headers(struct views *vs, struct http_body *b,
		    const char *etag, time_t at);
const struct views_counters *views_counters(const struct views *vs);
/* How history reads revisions kept on disk (*ctx: its argument). */
tally_revision_loader views_loader(const struct views *vs, void **ctx);

/*
 * The version ring.  The slot kept for version n (current version cur), or
 * NULL when n is not kept; *oldest is the first version that may be, *kept
 * how many the ring holds.
 */
struct version_slot *views_version(struct views *vs, uint64_t n, uint64_t cur,
		    uint64_t *oldest, size_t *kept);
/*
 * The version just published (the core's state is that version's): kept in
 * the ring as a copy of its totals, its leaderboard written when first
 * asked, so that every version of the ring's range is servable at the cost
 * of a copy rather than a render.  0, or -1 without memory.
 */
int		 views_version_publish(struct views *vs, uint64_t version);
/* slot's leaderboard body, written from its totals when first asked.  0/-1. */
int		 views_version_leaderboard(struct views *vs,
		    struct version_slot *slot);
/* Draw slot's hemicycle from its leaderboard (once).  0 or -1. */
int		 views_version_svg(struct views *vs, struct version_slot *slot);
/* Forget every kept version: a new epoch (a swapped definition). */
void		 views_versions_clear(struct views *vs);

#endif
