/*
 * render.h - the JSON views of a state.
 *
 * Rendering is pure: the caller passes the time strings it wants shown
 * (RFC 3339, UTC), so views are reproducible in tests.  Each function returns
 * a new JSON reference, or NULL on allocation failure.
 */
#ifndef TALLY_RENDER_H
#define TALLY_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include <tally/state.h>

struct json_t;

/* GET /v1/leaderboard: national ranking (seats desc, votes desc, id asc). */
struct json_t	*tally_render_leaderboard(const struct tally_state *s,
		    const char *updated_at);

/* The same as compact ASCII-only JSON text, written directly (new, NUL-
 * terminated; NULL on allocation failure). */
char		*tally_render_leaderboard_text(const struct tally_state *s,
		    const char *updated_at);

/*
 * A share (tally_share(part, whole)) as JSON text, written with integers:
 * the bytes jansson writes for that double with JSON_REAL_PRECISION(10)
 * ("12.34", "12.3", "12.0").  Into out (NUL-terminated); its length.
 */
size_t		 tally_render_share(uint64_t part, uint64_t whole,
		    char out[48]);

/* GET /v1/provinces: every province with its progress and leader. */
struct json_t	*tally_render_provinces(const struct tally_state *s);

/*
 * GET /v1/provinces?settled=false (or true): the same rows, only the
 * provinces whose seats can no longer change (settled) or can (not).
 */
struct json_t	*tally_render_provinces_settled(const struct tally_state *s,
		    bool settled);

/*
 * GET /v1/provinces/{id}: lists with votes, shares, seats, threshold status,
 * votes to the next seat and margin of the last; pending ties.  With
 * `explain`, also the winning quotients in order.
 */
struct json_t	*tally_render_province(const struct tally_state *s,
		    size_t province, bool explain);

/*
 * What posting `feeds` (borrowed) would do, changing nothing (?dry_run=1):
 * each is checked as the core would (tally_state_check_post: chk[i] NEW or
 * DUPLICATE), then
 * {"dry_run": true, "status", "version" (the version it would become if
 * nothing else is applied first), "results": [{"province", "revision",
 * "status", "votes": {list: delta}, "seats": {list: delta}, "pending"}],
 * "national_seats": {coalition: delta}}.  Seats are allocated with the
 * national exclusions in force (a national threshold that the feed would
 * move is not followed into other provinces).  NULL with err when a feed
 * would be refused (its field prefixed "/results/i" when n > 1).
 */
struct json_t	*tally_render_dry_run(const struct tally_state *s,
		    struct tally_feed *const *feeds, size_t n,
		    enum tally_check *chk, struct tally_error *err);

/*
 * What posting `lot` (borrowed) would do, changing nothing (?dry_run=1):
 * checked as the core would (chk NEW or DUPLICATE), then {"dry_run": true,
 * "status", "province", "revision", "version", "seats": {list: delta},
 * "pending", "national_seats": {coalition: delta}} (district seats; a
 * levelling tier is not followed).  NULL with err when it would be refused.
 */
struct json_t	*tally_render_lot_dry_run(const struct tally_state *s,
		    const struct tally_lot *lot, enum tally_check *chk,
		    struct tally_error *err);

/*
 * GET /v1/provinces/{id}/history: every accepted revision, oldest first.
 * Revisions kept on disk are read with `load` (may be NULL when none are).
 */
struct json_t	*tally_render_history(const struct tally_state *s,
		    size_t province, tally_revision_loader load, void *ctx);
/* The same for revisions first to last (indices, oldest 0; last past the
 * end: to the newest), each row as the whole history has it. */
struct json_t	*tally_render_history_range(const struct tally_state *s,
		    size_t province, size_t first, size_t last,
		    tally_revision_loader load, void *ctx);

/* GET /v1/coalitions/{id}: national totals and the per-province breakdown. */
struct json_t	*tally_render_coalition(const struct tally_state *s,
		    size_t coalition);

/* CSV (RFC 4180, header row, CRLF) of the leaderboard and the provinces.
 * New NUL-terminated strings (free), NULL on allocation failure. */
char		*tally_render_leaderboard_csv(const struct tally_state *s);
char		*tally_render_provinces_csv(const struct tally_state *s);

/*
 * GET /v1/results.csv and /v1/results.jsonl: the flat file, one row per
 * province x list of the current snapshots (provinces in the definition's
 * order, lists by id): contest (the election id), province and its name,
 * list, list_name (its coalition's name), coalition, votes, valid (the
 * province's list votes + blank), share (100 * votes / valid as an exact
 * decimal rounded half up to 4 places, computed in integers), seats
 * (district), levelling_seats, seats_min, seats_max (empty / null without
 * a bound on the uncounted), certain (min = max), revision, status, version
 * (the version that last changed the province's views) and updated_at
 * (that version's time).  Only the provinces whose version
 * is greater than `since` (0: all).  New NUL-terminated strings (free),
 * NULL on allocation failure.
 */
struct tally_row_stamp {
	uint64_t	 version;	/* the version that last changed it */
	char		 at[40];	/* its time, RFC 3339 */
};
/*
 * `stamps` (n_provinces entries, borrowed, may be NULL) are the provinces'
 * versions and times as the caller keeps them across restarts (the
 * daemon's stamps); NULL: the state's `changed` and received_at.
 */
char		*tally_render_results_csv(const struct tally_state *s,
		    const struct tally_row_stamp *stamps, uint64_t since);
char		*tally_render_results_jsonl(const struct tally_state *s,
		    const struct tally_row_stamp *stamps, uint64_t since);
/*
 * GET /v1/provinces/{id}/history.csv: a row per revision and list (the
 * lists of the revision and of the one before), votes and seats with their
 * change against the revision before, and the list's seat bounds before and
 * after the revision (empty when that count bounded nothing).  `load` as
 * tally_render_history.
 */
char		*tally_render_history_csv(const struct tally_state *s,
		    size_t province, tally_revision_loader load, void *ctx);

/*
 * GET /v1/leaderboard.svg: the hemicycle as a standalone SVG image (UTF-8,
 * new NUL-terminated string; NULL on allocation failure).  One circle
 * (class "seat") per seat of the election, grouped by coalition in ranking
 * order (<g class="coalition" data-coalition="id" fill="colour">), then
 * pending seats (<g class="pending">, hatched, its title naming the tied
 * lists) and seats not yet allocated (<g class="unallocated">); the
 * majority line (class "majority"); a legend; the title, and the provinces
 * and stations counted.
 */
char		*tally_render_hemicycle_svg(const struct tally_state *s,
		    const char *updated_at);
/*
 * The same image from the bytes of a leaderboard view of election e (GET
 * /v1/versions/{n}/leaderboard.svg draws a kept version); the pending seats'
 * title names the coalitions tied for them rather than the provinces.  New
 * string, or NULL when the bytes are not such a view or memory ran out.
 */
char		*tally_render_hemicycle_svg_leaderboard(
		    const struct tally_election *e, const char *bytes,
		    size_t len);

/* A share in percent of `whole`, rounded half up to 2 decimals, for display. */
double		 tally_share(uint64_t part, uint64_t whole);

#endif
