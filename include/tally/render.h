/*
 * render.h - the JSON views of a state.
 *
 * Rendering is pure: the caller passes the time strings it wants shown
 * (RFC 3339, UTC), so views are reproducible in tests.  Each function returns
 * a new JSON reference, or NULL on allocation failure.
 */
#ifndef TALLY_RENDER_H
#define TALLY_RENDER_H

#include <tally/state.h>

struct json_t;

/* GET /v1/leaderboard: national ranking (seats desc, votes desc, id asc). */
struct json_t	*tally_render_leaderboard(const struct tally_state *s,
		    const char *updated_at);

/* A share in percent of `whole`, rounded half up to 2 decimals, for display. */
double		 tally_share(uint64_t part, uint64_t whole);

#endif
