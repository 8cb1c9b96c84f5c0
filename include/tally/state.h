/*
 * state.h - the live tally of one election.
 *
 * The state is a pure function of the ordered feed log: the daemon applies
 * accepted snapshots in journal order, and every replica that applies the
 * same log holds the same state.  One thread owns a state; it has no locks.
 *
 * Applying a snapshot re-allocates only its province and updates the
 * national figures by difference, so its cost does not grow with the number
 * of provinces.  (A national threshold is the exception: when a coalition
 * crosses it, every reporting province is re-allocated.  A levelling tier
 * is re-computed nationally after every change: its cost grows with the
 * number of provinces that have levelling seats.)
 */
#ifndef TALLY_STATE_H
#define TALLY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/bounds.h>
#include <tally/election.h>
#include <tally/error.h>
#include <tally/feed.h>
#include <tally/levelling.h>
#include <tally/lot.h>
#include <tally/seats.h>

struct tally_calls;

struct tally_coalition_total {
	uint64_t votes;
	uint64_t seats;		/* district_seats + levelling_seats */
	uint64_t district_seats;
	uint64_t levelling_seats;
	/* Pending seats it is tied for, summed over provinces: what it may
	 * still win by lot, not seats of its own (seats_pending counts each
	 * pending seat once; these overlap between the tied coalitions). */
	uint64_t tied_for;
	size_t	 provinces;	/* provinces where it has a list */
	bool	 excluded;	/* below a national threshold */
	bool	 exempt;	/* no threshold applies to it */
	bool	 open;		/* ... and the uncounted could still change that */
	/* Seat bounds summed over reporting provinces (tally/bounds.h); a
	 * province not yet reporting adds its seats to every coalition's most. */
	uint64_t seats_min;
	uint64_t seats_max;
};

/*
 * A province's seat bounds (tally/bounds.h) as the state keeps them: per
 * list of the current snapshot, in the feed's order.
 */
struct tally_seat_bounds {
	uint32_t	*min;		/* fewest firm seats it can end with */
	uint32_t	*max;		/* most it can still reach */
	bool		 known;		/* a bound on the uncounted was known */
	bool		 exact;		/* min and max proven exact */
	bool		 settled;	/* no list's seats can change */
};

/* One accepted snapshot of a province. */
struct tally_revision {
	struct tally_feed	*feed;			/* owned; NULL while on disk */
	char			 received_at[40];	/* RFC 3339, from the caller */
	/* An older revision kept on disk (a snapshot) instead of in memory:
	 * where its record is, for the caller's loader. */
	uint64_t		 off;
	uint32_t		 len;
	/* The version that applied it (its feed's), TALLY_VERSION_UNKNOWN, or
	 * 0 for an older revision read from a snapshot: its feed says. */
	uint64_t		 version;
};

/*
 * Loads an older revision kept on disk (rev->feed == NULL): a new feed and
 * its received_at (40 bytes), or NULL.  Supplied by the daemon, which owns
 * the files.
 */
typedef struct tally_feed *(*tally_revision_loader)(void *ctx,
    const struct tally_revision *rev, char *received_at);

struct tally_province_state {
	struct tally_revision	*revisions;	/* history, oldest first */
	size_t			 n_revisions;
	size_t			 cap_revisions;
	/* Seats of the current snapshot; lists in the feed's order. */
	struct tally_seat_result result;
	bool			 has_result;
	/*
	 * The version at which the province's seats were last computed: the
	 * state's version + 1 while a change is being applied, so that after
	 * tally_state_bump it names the version that published it.  Views of
	 * the province that did not change keep their validators.
	 */
	uint64_t		 changed;
	bool			 listed_;	/* in the state's allocated_ */
	/* Per list of the current snapshot, when coalitions carry their own
	 * thresholds: the percent in force ({0, 1}: the rule's), exemptions. */
	struct tally_frac	*list_percent_;
	bool			*exempt_;
	size_t			 cap_lists_;
	/* What the uncounted can still change, sized with the result. */
	struct tally_seat_bounds bounds;
	enum tally_uncounted	 uncounted_from;
	uint64_t		 uncounted;	/* when uncounted_from is known */
	/* Every lot posted for the province, oldest first (owned). */
	struct tally_lot	**lots;
	size_t			 n_lots;
	/* The newest lot's order as list indices of the current snapshot,
	 * while it is in force (n_lot_order 0: not in force). */
	size_t			 lot_order[TALLY_LOT_MAX];
	size_t			 n_lot_order;
	uint64_t		 trial_, trials_;	/* state.c: a trial's mark */
};

struct tally_state {
	const struct tally_election	*election;	/* borrowed */
	uint64_t			 version;	/* bumps once per applied change */
	/* received_at of the newest applied snapshot ("" before any): the
	 * journaled time of the tally, the same after a restart. */
	char				 updated_at[40];
	/*
	 * Set (never cleared here) when an apply changed provinces beyond the
	 * one it was for: a national threshold re-allocated them, or a
	 * levelling tier may have moved their levelling seats.  The caller
	 * clears it, applies, and then finds them by `changed`.
	 */
	bool				 wide_change;
	/*
	 * Set by the caller while it replays its own journal at start
	 * (tally_journal_apply): a lot that no longer settles a tie -- the
	 * election definition was edited since it was drawn, and the tie it
	 * settled is gone -- is then kept without effect (its record keeps its
	 * version) instead of refusing the record.  Live and in cluster mode it
	 * is false: there a lot that does not settle the tie is refused.
	 */
	bool				 replay_moot_lots;
	unsigned long			 moot_lots;	/* counted while set */
	/*
	 * Those moot lots, oldest first (owned): without effect, but kept so
	 * that a snapshot keeps them as the journal does, and a definition
	 * edited again, under which one settles the tie at its place, finds
	 * it (daemon/snapshot.c).
	 */
	struct tally_lot		**moot;
	size_t				 n_moot;
	struct tally_coalition_total	*coalitions;	/* n_coalitions entries */
	struct tally_province_state	*provinces;	/* n_provinces entries */
	uint64_t			 valid;		/* list votes + blank */
	uint64_t			 blank;
	uint64_t			 invalid;
	uint64_t			 seats_allocated;
	uint64_t			 seats_pending;
	size_t				 provinces_reporting;
	size_t				 provinces_final;
	uint64_t			 stations_reporting;
	uint64_t			 stations_total;
	/* The levelling tier, when the election has one (else NULL), and
	 * its inputs per coalition (votes, district seats). */
	struct tally_levelling_result	*levelling;
	uint64_t			*levelling_votes_;
	uint64_t			*levelling_district_;
	size_t				 provinces_settled;
	uint64_t			 seats_unreported;	/* provinces with no feed */
	/* Scratch for allocation inputs (n_coalitions entries each). */
	uint64_t			*votes_;
	bool				*excluded_;
	bool				*open_;
	struct tally_bounds		 bounds_;	/* computes every province's */
	/* The race calls (tally/calls.h): made by lib/calls.c on first use
	 * and freed through calls_free (the state sits below that unit). */
	struct tally_calls		*calls;
	void				(*calls_free)(struct tally_calls *);
	/* The provinces allocated since tally_calls_observe last took them,
	 * each once (n_provinces entries): what it need look at. */
	size_t				*allocated_;
	size_t				 n_allocated_;
	/* Scratch of tally_state_check_apply, sized for every province
	 * (lists: n_coalitions; seats: the most of any province). */
	struct tally_seat_result	*check_;
	uint64_t			*check_votes_;
	bool				*check_excluded_;	/* per list */
	bool				*check_excl_;		/* per coalition */
	struct tally_frac		*check_pct_;
	bool				*check_exempt_;
};

/* Levelling seats of `coalition` assigned to `province` (0 without a tier). */
uint32_t tally_levelling_in(const struct tally_state *s, size_t province,
	    size_t coalition);

/* A new empty state for `e` (borrowed: it must outlive the state). */
struct tally_state	*tally_state_create(const struct tally_election *e);
void			 tally_state_destroy(struct tally_state *s);

/* The current snapshot of a province, or NULL before its first feed. */
const struct tally_revision *tally_state_current(const struct tally_state *s,
			    size_t province);

/*
 * Would `f` be accepted after its province's current snapshot?
 * tally_feed_check (NEW, DUPLICATE; stale_revision, revision_conflict).
 * Changes nothing.
 */
int	tally_state_check(const struct tally_state *s, const struct tally_feed *f,
	    enum tally_check *result, struct tally_error *err);
/*
 * The one check of a posted feed (live, dry run, a cluster node before it
 * publishes): tally_state_check, then for a NEW snapshot
 * tally_feed_check_lists (`list_missing`) and tally_state_check_apply
 * (`internal`, `out_of_memory`).  0 with *result, or -1 with err.  Changes
 * nothing.  Replay applies only tally_state_check: journals hold what older
 * rules accepted.
 */
int	tally_state_check_post(const struct tally_state *s,
	    const struct tally_feed *f, enum tally_check *result,
	    struct tally_error *err);
/* The same, and it marks f when apply may trust its trial (state.c). */
int	tally_state_check_post_mark(const struct tally_state *s,
	    struct tally_feed *f, enum tally_check *result,
	    struct tally_error *err);
/*
 * Apply a checked NEW snapshot: it becomes the province's current one (and
 * joins its history), the province is re-allocated, national totals move by
 * the difference.  Takes `f` on every path.  Does not bump the version: the
 * caller bumps once per request (tally_state_bump).  0, or -1 with the state
 * unchanged on allocation failure or when tally_state_check_apply refuses
 * it (err `internal`).
 */
int	tally_state_apply(struct tally_state *s, struct tally_feed *f,
	    const char *received_at, struct tally_error *err);

/*
 * Will applying `f` (borrowed, checked NEW) succeed?  Allocates the province
 * for it in a result of its own, exactly as tally_state_apply will (the same
 * sizes, the lot in force, the national exclusions as they stand), and
 * changes nothing.  0; -1 with err `internal` (TALLY_ERROR_INTERNAL) when the
 * seat engine fails on it (a bug: the feed must be refused, not journaled),
 * or `out_of_memory`.  tally_state_apply runs it first, so that a record
 * it cannot apply leaves the state as it was instead of stopping the daemon.
 */
int	tally_state_check_apply(const struct tally_state *s,
	    const struct tally_feed *f, struct tally_error *err);
void	tally_state_bump(struct tally_state *s);

/* A lot against the tally: tally_state_lot_check, _apply, _keep_moot and
 * tally_state_lot are declared in tally/lot.h. */

/*
 * Append an older revision of `province` that stays on disk (its record at
 * off, len), before the province's current one is applied.  0 or -1.
 */
int	tally_state_add_stored(struct tally_state *s, size_t province,
	    uint64_t off, uint32_t len);

/*
 * Older revision i of `province` is now kept on disk (its record at off,
 * len): its feed is freed, and history reads it back through the loader.
 * The current revision is never stored.
 */
void	tally_state_store(struct tally_state *s, size_t province, size_t i,
	    uint64_t off, uint32_t len);
/*
 * Whether the national threshold decides who takes part in a province: only
 * where the election's own rule is in force (a province's own allocation
 * inherits nothing from it).
 */
bool	tally_province_national(const struct tally_province *pv);

/*
 * The allocation input the live allocation builds for the snapshot f of its
 * province, without a lot: the province's rule, the national exclusions
 * (`excl`, per coalition; NULL: those in force) where
 * tally_province_national(), and the coalitions' own percents and
 * exemptions.  Every allocation of a province (live, trial, history, dry
 * run) goes through it, so that none can divide seats by another rule.
 * votes, excluded, pct and exempt: f->n_lists entries each, filled here
 * (pct and exempt NULL: left out; the caller sets in->list_percent and
 * in->exempt).
 */
void	tally_state_feed_input(const struct tally_state *s,
	    const struct tally_feed *f, const bool *excl,
	    struct tally_seat_input *in, uint64_t *votes, bool *excluded,
	    struct tally_frac *pct, bool *exempt);

/*
 * The allocation input of a province's current snapshot, for explanations:
 * `votes` and `excluded` must hold n_coalitions entries.  false before the
 * first feed.
 */
bool	tally_state_seat_input(const struct tally_state *s, size_t province,
	    struct tally_seat_input *in, uint64_t *votes, bool *excluded);

#endif
