/*
 * live_delta.h - what an event stream is sent per version beyond the
 * whole leaderboard (issue 24): delta events (GET /v1/events?deltas=1)
 * and the coalescing of versions (sse_coalesce_ms).
 *
 * A contest's live state (live.c) holds one.  It keeps the provinces
 * changed since the last event handed to the streams (the pending set),
 * the clock of that event, and, while a stream of deltas follows the
 * contest, the leaderboard's bytes of that event (the base a delta is
 * taken from).  A delta is a pure function of (definition, log prefix at
 * the base, log prefix now): the same versions give the same bytes.
 *
 * Threads: the loop thread only [L].
 *
 * Depends on: views (province views, the leaderboard), core (the
 * election's size).  Calls nothing of live.c by name: the coalescing
 * timer calls the function given to live_delta_create.
 */
#ifndef TALLYD_LIVE_DELTA_H
#define TALLYD_LIVE_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_chunk;
struct live_delta;
struct view;
struct views;

/*
 * For views' contest (views borrowed, kept), coalescing versions to at
 * most one event per coalesce_ms (0: an event per version); when the
 * coalescing timer ends, flush(arg) sends what is pending.  NULL without
 * memory.
 */
struct live_delta *live_delta_create(struct views *views, long coalesce_ms,
		    void (*flush)(void *), void *arg);
void		 live_delta_destroy(struct live_delta *dl);
/* The loop the coalescing timer runs on.  0, or -1 without memory. */
int		 live_delta_set_base(struct live_delta *dl,
		    struct event_base *base);
/*
 * Version `version` changed provinces changed[0..n) (indexes): they join
 * the pending set.  true when the version's event waits (the interval
 * since the last event is not over: the timer is armed, flush follows),
 * false when it is to be sent now.
 */
bool		 live_delta_defer(struct live_delta *dl, uint64_t version,
		    const size_t *changed, size_t n, size_t n_provinces);
/* Is an event waiting for the timer? */
bool		 live_delta_waiting(const struct live_delta *dl);
/*
 * The pending set: the provinces changed since the last event (borrowed,
 * ascending), their number in *n; *first the first version since then
 * (0: none), *versions how many, *last_sent the version of the last
 * event (0: none yet).
 */
const size_t	*live_delta_pending(const struct live_delta *dl, size_t *n,
		    uint64_t *first, uint64_t *versions, uint64_t *last_sent);
/*
 * The data of a delta event (new, NUL-terminated JSON, one line; NULL
 * without memory or without a base): from the base to the current state.
 * {"version": V, "from": B, "provinces": [each pending province's GET
 * /v1/provinces/{id} body], "leaderboard": {"set": {members that
 * differ}, "unset": [members gone], "coalitions": [per row that differs:
 * {"id", the members that differ} (a new row: whole)],
 * "coalitions_replace": [whole rows that lost a member], "order": [every
 * coalition id, when the order changed]}}: "unset", "coalitions_replace"
 * and "order" only when not empty.  docs/API.md says how to apply it.
 */
char		*live_delta_data(struct live_delta *dl);
/*
 * The event of lb (borrowed) was handed to the streams: the pending set
 * empties, the clock starts again; keep: streams of deltas follow, lb is
 * the next delta's base (else none is kept).  0, or -1 without memory
 * (then no base: the next delta streams get whole leaderboards).
 */
int		 live_delta_sent(struct live_delta *dl, const struct view *lb,
		    bool keep);
/* Nobody follows the contest: the pending set and the timer go. */
void		 live_delta_forget(struct live_delta *dl);
/* Is the base lb's version?  (A stream of deltas starts there.) */
bool		 live_delta_is_base(const struct live_delta *dl,
		    const struct view *lb);
/* lb (borrowed) is the base from now on, nothing else changes.  0/-1. */
int		 live_delta_rebase(struct live_delta *dl, const struct view *lb);
/*
 * The plain delta events c (borrowed: a reference is kept) were sent,
 * taking the base to version/digest (call before live_delta_sent): kept
 * in a ring of the last LIVE_DELTA_RING, for resumes.
 */
#define LIVE_DELTA_RING	64
void		 live_delta_keep(struct live_delta *dl, struct http_chunk *c,
		    uint64_t version, uint64_t digest);
/*
 * A resume from the event id "<version>-<digest>" (id): the plain delta
 * events from there to the last sent, joined (new), when the ring holds
 * every one; else NULL (the gap cannot be filled: a snapshot is sent).
 */
struct http_chunk *live_delta_since(const struct live_delta *dl,
		    const char *id);
/* A new epoch: the base and the pending set go. */
void		 live_delta_reset(struct live_delta *dl);

#endif
