/*
 * tally/totals.h - what the state lends beside its views: a copy of the
 * national totals of one version (the daemon's version ring keeps one per
 * version instead of rendering each), and how many revisions are in
 * memory (for metrics).
 */
#ifndef TALLY_TOTALS_H
#define TALLY_TOTALS_H

#include <stddef.h>

#include <tally/state.h>

/* Revisions whose feed is in memory (for metrics). */
size_t	tally_state_revisions_in_memory(const struct tally_state *s);

/*
 * A copy of what the national ranking reads -- the version, updated_at,
 * the national totals and every coalition's -- and nothing of the
 * provinces: enough for tally_render_leaderboard_text to write that
 * version's leaderboard later, byte for byte as then (the daemon's version
 * ring keeps one per version instead of rendering each).  Nothing else may
 * read it.  New (tally_state_totals_destroy), or NULL without memory.
 */
struct tally_state	*tally_state_totals_copy(const struct tally_state *s);
void			 tally_state_totals_destroy(struct tally_state *t);

#endif
