/*
 * reference.h - the views that describe the API and replay its history:
 * the route index (GET /v1/) and the national changes feed
 * (GET /v1/changes?since=V).  Pure, like render.h: the caller passes what
 * the daemon owns (its route table, its loader of revisions kept on disk).
 */
#ifndef TALLY_REFERENCE_H
#define TALLY_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/error.h>
#include <tally/state.h>

struct json_t;

/* One route as the index shows it (every string borrowed). */
struct tally_route_doc {
	const char	*methods;	/* "GET, HEAD" or "POST" */
	const char	*path;		/* pattern: "/v1/provinces/{id}" */
	bool		 token;		/* needs a bearer token (a feed) */
	const char	*description;	/* one line */
	const char	*schema;	/* its JSON Schema's name, or NULL */
};

/*
 * GET /v1/: {"api": "tallyd", "docs": ..., "routes": [{"method", "path",
 * "href" (the path itself when it has no {parameter}, else null), "token",
 * "description", "schema" ("/v1/schemas/NAME.json" or null)}]} in the
 * table's order.
 * New, or NULL without memory.
 */
struct json_t	*tally_render_index(const struct tally_route_doc *routes,
		    size_t n);

/*
 * GET /v1/changes?since=V: the province revisions applied after version
 * `since`, in version order (a batch's provinces in the election's order),
 * each a history row (tally_render_history) with its "province": {"since",
 * "version", "kept_after", "changes": [...], "more", "next"}.  At most
 * max_rows rows (more when a version must stay whole), cut between
 * versions: "more" says whether rows were left out, "next" is the `since`
 * of the next page (null without more).  Only the revisions asked for are
 * read back (revisions kept on disk with `load`).  NULL with err:
 * TALLY_ERROR_NOT_FOUND `history_not_kept` (a 410) when the history
 * cannot say every change after `since` (revisions from a snapshot written
 * before versions were kept: *kept_after is then the oldest V it can
 * answer for); `internal` when a revision on disk cannot be read back;
 * `out_of_memory`.
 */
struct json_t	*tally_render_changes(const struct tally_state *s,
		    uint64_t since, size_t max_rows, tally_revision_loader load,
		    void *ctx, uint64_t *kept_after, struct tally_error *err);

#endif
