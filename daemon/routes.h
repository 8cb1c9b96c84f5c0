/*
 * routes.h - the API's one route table: for every route its methods, its
 * path pattern, its handler, whether it takes a token and its cache policy.
 * A new route is one line of api_routes[] (routes.c) and, when it needs
 * one, a handler in the module of its concern.
 *
 * Threads: the table is [I] (const); routes_match and the dispatch
 * (api_handle, api_admit, api_refused in api.h) run on the loop thread.
 */
#ifndef TALLYD_ROUTES_H
#define TALLYD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <tally/election.h>

struct call;
struct tally_diag;

/* The routes, in the order /metrics lists them. */
enum route_id {
	R_HEALTH, R_METRICS, R_ELECTION, R_LEADERBOARD, R_LEADERBOARD_CSV,
	R_PROVINCES, R_PROVINCES_CSV, R_PROVINCE, R_HISTORY, R_PROVINCE_RESULTS,
	R_RESULTS, R_COALITION, R_LOT, R_EVENTS, R_VERSION_LEADERBOARD,
	R_VERSION_PROVINCES, R_PAGE, R_LEADERBOARD_SVG,
	R_VERSION_LEADERBOARD_SVG,
	R_RESULTS_CSV, R_RESULTS_JSONL, R_HISTORY_CSV, R_MAP_SVG, /* newsroom */
	R_INDEX, R_INDEX_BARE, R_CHANGES, R_SCHEMA, /* reference */
	R_CALLS, R_CALLS_DECLARE, R_CALLS_RETRACT,	/* calls (calls_http.c) */
	R_LOG_KEY, R_LOG_CHECKPOINT, R_LOG_TILE, R_LOG_PROOF, /* tlog */
	R_LOG_WITNESSED, R_LOG_COSIGNATURE,
	R_CONTESTS, R_CONTEST_ELECTION, R_CONTEST_LEADERBOARD,	/* contests */
	R_CONTEST_LEADERBOARD_CSV, R_CONTEST_LEADERBOARD_SVG,
	R_CONTEST_PROVINCES, R_CONTEST_PROVINCES_CSV, R_CONTEST_PROVINCE,
	R_CONTEST_HISTORY, R_CONTEST_COALITION, R_CONTEST_PROVINCE_RESULTS,
	R_CONTEST_RESULTS, R_CONTEST_LOT, R_CONTEST_VERSION_LEADERBOARD,
	R_CONTEST_VERSION_PROVINCES, R_CONTEST_VERSION_LEADERBOARD_SVG,
	R_CONTEST_CHANGES, R_CONTEST_RESULTS_CSV, R_CONTEST_RESULTS_JSONL,
	R_CONTEST_HISTORY_CSV, R_CONTEST_MAP_SVG, R_CONTEST_CALLS,
	R_CONTEST_CALLS_DECLARE, R_CONTEST_CALLS_RETRACT, R_CONTEST_EVENTS,
	R_CONTEST_LOG_KEY, R_CONTEST_LOG_CHECKPOINT, R_CONTEST_LOG_TILE,
	R_CONTEST_LOG_PROOF,
	R_NONE, R_COUNT
};

/* Bytes of a route's {id} parts: a contest's route has two, "<c>/<id>". */
#define ROUTE_ID_MAX	(2 * TALLY_ID_MAX + 2)

/* Methods a route takes (a bit set). */
#define ROUTE_GET	0x1	/* GET, HEAD, and OPTIONS (CORS preflight) */
#define ROUTE_POST	0x2	/* POST with a body */

/* What a cache may do with a route's answers. */
enum route_cache {
	CACHE_NONE,		/* no-store: health, metrics, POST answers */
	CACHE_VIEW,		/* a view: ETag of its stamp, max-age */
	CACHE_VIEW_WAIT,	/* the same, and ?wait=S long-polls on it */
	CACHE_IMMUTABLE,	/* a kept version: the same bytes for ever */
	CACHE_STREAM,		/* text/event-stream, never stored */
};

/*
 * A handler answers cl (its reply is filled, or left pending); id is the
 * {id} or {n} part of the path ("" when the pattern has none; a contest's
 * route: "<contest>" or "<contest>/<id>").
 */
typedef void (*route_fn)(struct call *cl, const char *id);

struct route {
	enum route_id	 id;
	unsigned	 methods;	/* ROUTE_GET or ROUTE_POST; 0: R_NONE */
	const char	*pattern;	/* its name in /metrics and messages */
	route_fn	 serve;
	bool		 token;		/* a feed: a token, the ingest listener */
	enum route_cache cache;
	/* What GET /v1/ says of it: one line, and the name of its JSON
	 * Schema in docs/schemas/ (NULL: not JSON, or a feed). */
	const char	*description;
	const char	*schema;
};

/* Indexed by enum route_id; api_routes[R_NONE] is "other". */
extern const struct route api_routes[R_COUNT];

/*
 * Is the table well-formed (each entry at its id's index, a handler and a
 * description for every route but R_NONE, token exactly on the POST
 * routes)?  -1 with diag.
 */
int	routes_check(struct tally_diag *diag);
/*
 * The route of path; id (idlen bytes) receives its {id} or {n} part.  Ids
 * are checked for syntax here; whether they exist is the handler's question.
 */
const struct route *routes_match(const char *path, char *id, size_t idlen);
/* GET /v1/ and /v1 (route_fn): the table itself as an index. */
void	routes_serve_index(struct call *cl, const char *id);

#endif
